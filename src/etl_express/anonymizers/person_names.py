"""Is a value a person's name? The detector's evidence without a NER model.

A value is *shaped* like a name when it is one to four capitalized words of letters (hyphens,
apostrophes and an initial's dot allowed) and none of them is a word of places or
organisations (``Street``, ``City``, ``Inc``, ``ООО``). A shaped value is *evidently* a name
when one of its words is a common given name or surname of the languages people here write
(English, Spanish, Portuguese, French, German, Italian, Polish, Russian and Ukrainian in both
scripts), or a Russian patronymic (``-вич``, ``-вна``). The lists are short on purpose: they
hold the names that make up most of any population, so most values of a column of names hold
one, and the detector asks "most", never "all". A place that starts like a saint's name
(``San Jose``, ``Saint Louis``, ``Port Elizabeth``) is not a name.
"""

from __future__ import annotations

import re
import unicodedata

_GIVEN = """
james john robert michael william david richard joseph thomas charles christopher daniel matthew
anthony donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward
jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin
samuel gregory alexander frank patrick raymond jack dennis jerry tyler aaron jose adam nathan
henry douglas zachary peter kyle ethan walter noah jeremy christian keith roger terry gerald
harold sean carl arthur lawrence dylan jesse bryan billy joe bruce gabriel logan
albert willie alan juan wayne elijah randy roy vincent ralph eugene russell bobby mason philip
louis harry oliver jake liam lucas leo tom tony luke sam alex ben dan mike chris nick steve
mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty
margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah
stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma
nicole helen samantha katherine christine debra rachel carolyn janet catherine maria heather
diane ruth julie olivia joyce kelly lauren christina joan evelyn judith
megan andrea cheryl hannah jacqueline martha gloria teresa ann sara frances kathryn
janice jean abigail alice julia judy sophia denise doris marilyn danielle beverly
isabella theresa diana natalie brittany marie kayla alexis lori jane kate lucy
ella mia ava chloe zoe sophie eva ellie amelia isla freya
carlos luis miguel antonio manuel francisco javier pedro jesus alejandro rafael fernando pablo
sergio jorge diego andres ricardo eduardo roberto mario alberto enrique raul ramon oscar ruben
santiago mateo joao rodrigo gustavo felipe marcos thiago bruno lucia carmen isabel elena
ana laura paula marta cristina pilar beatriz silvia sofia valentina camila
gabriela fernanda mariana daniela adriana patricia monica jean pierre michel philippe alain
nicolas francois jacques bernard eric christophe frederic olivier julien sebastien guillaume
antoine mathieu vincent hugo louis camille nathalie isabelle sylvie catherine francoise
valerie sandrine celine aurelie emilie julie manon chloe hans peter klaus jurgen wolfgang
stefan andreas thomas michael frank uwe dieter gunter horst werner heinz karl lukas jonas
felix leon paul finn elias ursula monika petra sabine renate karin birgit heike andrea
claudia susanne katharina anja lena lea hannah marco giuseppe giovanni francesco luca
alessandro andrea matteo lorenzo stefano roberto paolo davide simone federico riccardo
giulia francesca chiara sara martina alessia giorgia elisa federica silvia valentina piotr
krzysztof tomasz pawel marcin michal grzegorz jakub adam lukasz katarzyna malgorzata agnieszka
barbara ewa joanna magdalena aleksandra zofia
ivan sergey sergei alexey aleksey alexei dmitry dmitriy dmitri andrey andrei vladimir mikhail
nikolay nikolai pavel maxim maksim artem artyom yury yuri igor oleg roman denis evgeny evgeniy
konstantin ilya kirill viktor victor anton vadim boris grigory leonid stanislav timur ruslan
vasily vasiliy egor yegor fedor fyodor semen stepan yaroslav vyacheslav valery valeriy arkady
gennady taras bogdan olexandr oleksandr mykola petro volodymyr
olga elena natalia natalya tatiana tatyana irina svetlana ekaterina yekaterina anastasia
marina yulia julia anna maria daria darya ksenia kseniya alina polina sofia sofya
viktoria vera lyudmila ludmila galina nadezhda valentina larisa oksana alla lidia nina
zoya inna kristina veronika alisa yana elizaveta arina milana diana evgenia ulyana
иван сергей алексей дмитрий андрей владимир михаил николай павел максим артём артем юрий
игорь олег роман денис евгений константин илья кирилл виктор антон вадим борис григорий
леонид станислав тимур руслан василий егор фёдор федор семён семен степан ярослав вячеслав
валерий аркадий геннадий тарас богдан александр пётр петр матвей тимофей марк лев глеб
даниил данила никита вениамин эдуард георгий анатолий ефим мирон арсений савелий захар
ольга елена наталья наталия татьяна ирина светлана екатерина анастасия марина юлия анна
мария дарья ксения алина полина софья софия виктория вера людмила галина надежда валентина
лариса оксана алла лидия нина зоя инна кристина вероника алиса яна елизавета арина милана
диана евгения ульяна александра варвара любовь маргарита жанна эльвира алёна алена олеся
ulrich volker jorg joerg rainer bernd gerhard manfred helmut rolf dirk holger ralf matthias
markus martin tobias florian sebastian christoph daniel jan tim niklas moritz philipp marcel
sven kai oliver torsten jens hartmut reinhard dietmar erich kurt otto fritz heinrich hermann
stefanie christiane gabriele angelika brigitte ingrid gisela elke anke silke nicole jana
simone melanie tanja nadine sandra kerstin jutta marion doris helga hildegard annette
cornelia martina daniela julia laura lisa anna lena leonie johanna sophie marie emilia mia
alvaro adrian alfonso angel cesar emilio ernesto esteban gonzalo hector ignacio jaime jesus
joaquin julio lorenzo marcelo martin nicolas octavio rodrigo salvador tomas vicente victor
agustin alicia amparo andrea angeles antonia araceli aurora blanca carla carolina clara
concepcion consuelo elena encarnacion esperanza eva gloria ines irene josefa juana julia
leticia lorena luisa manuela margarita natalia nerea noelia nuria raquel rocio rosario susana
veronica yolanda sergio ivan hugo iker alba marina noa martina
antonio angelo bruno carlo cesare claudio dario emanuele enrico fabio filippo gabriele
giacomo gianluca gianni giorgio guido leonardo luigi manuel massimo mauro michele nicola
pietro raffaele renato salvatore sandro tommaso umberto vittorio alberto aldo carmine
alessandra angela anna antonella barbara beatrice camilla carla caterina cristina elena
eleonora elisabetta emma erika gabriella giovanna ilaria irene laura lucia luisa marta
michela monica nadia paola patrizia roberta rosa serena simona stefania teresa valeria
aleksander andrzej artur bartosz damian dariusz dawid filip henryk hubert jacek janusz jerzy
kacper kamil karol konrad leszek marek mariusz mateusz mieczyslaw oskar przemyslaw rafal
robert ryszard sebastian slawomir stanislaw szymon tadeusz wieslaw wladyslaw wojciech zbigniew
zdzislaw alicja anita beata bozena danuta dorota edyta elzbieta grazyna halina helena irena
iwona jadwiga janina justyna kamila karolina krystyna lucyna maria marianna marzena monika
natalia patrycja renata stanislawa teresa urszula weronika wiktoria zuzanna
alain andre antoine arnaud benoit bertrand bruno cedric claude damien didier dominique
emmanuel etienne fabien fabrice franck gerard gilles herve jerome joel laurent loic lucien
marc marcel maurice pascal patrick raymond regis remi rene roger serge thierry tristan xavier
yves agnes alexandra amelie anne annie brigitte caroline cecile chantal christiane claire
colette corinne delphine denise elodie florence genevieve helene jacqueline jeanne josette
juliette laetitia louise lucie madeleine marguerite martine michele monique nadine odette
pauline sophie stephanie suzanne sylvie therese veronique yvette yvonne
afonso andre antonio arthur caio cauã daniel davi eduardo enzo fabio gabriel guilherme
heitor henrique igor joao julio leandro leonardo lucas luiz marcelo matheus murilo otavio
pedro rafael renato samuel thiago vinicius vitor yago alessandra aline amanda ana beatriz
bianca bruna carolina clara debora eduarda fernanda giovanna heloisa isabela julia larissa
leticia livia luana luiza manuela mariana natalia rafaela raquel sabrina sara stella vitoria
yasmin
"""

_SURNAMES = """
smith johnson williams jones garcia miller davis rodriguez martinez hernandez lopez
gonzalez wilson anderson thomas taylor moore jackson lee perez thompson harris
sanchez clark ramirez lewis robinson walker allen wright scott torres nguyen
flores adams nelson baker rivera campbell mitchell carter roberts gomez phillips
evans turner diaz parker cruz edwards collins reyes stewart morris morales murphy rogers
gutierrez ortiz morgan cooper peterson bailey kelly howard ramos kim richardson
watson chavez james bennett mendoza ruiz hughes alvarez castillo sanders
patel myers ross foster jimenez fernandez gonzales silva santos oliveira souza pereira
ferreira almeida muller mueller schmidt schneider fischer weber meyer wagner becker
schulz hoffmann koch richter neumann schwarz zimmermann braun kruger hofmann
dubois durand leroy moreau laurent lefebvre michel bernard petit roux fournier girard
bonnet dupont lambert fontaine rousseau rossi russo ferrari esposito bianchi romano colombo
ricci marino greco conti giordano mancini nowak kowalski wisniewski
wojcik kowalczyk kaminski lewandowski zielinski szymanski ivanov ivanova petrov petrova
sidorov sidorova smirnov smirnova kuznetsov kuznetsova popov popova vasiliev vasilieva
sokolov sokolova mikhailov novikov fedorov morozov volkov alekseev lebedev semenov egorov
pavlov kozlov stepanov nikolaev orlov andreev makarov nikitin zakharov shevchenko kovalenko
bondarenko tkachenko melnyk boyko
иванов петров сидоров смирнов кузнецов попов васильев соколов михайлов новиков федоров
морозов волков алексеев лебедев семенов семёнов егоров павлов козлов степанов николаев
орлов андреев макаров никитин захаров зайцев соловьев соловьёв борисов яковлев григорьев
романов воробьев воробьёв сергеев фролов александров дмитриев королев королёв гусев киселев
киселёв ильин максимов поляков сорокин виноградов ковалев ковалёв белов медведев антонов
тарасов жуков баранов филиппов комаров давыдов беляев герасимов богданов осипов сидорова
иванова петрова смирнова кузнецова попова васильева соколова михайлова новикова федорова
морозова волкова лебедева семенова егорова павлова козлова степанова орлова шевченко
коваленко бондаренко ткаченко мельник бойко
"""

GIVEN_NAMES = frozenset(_GIVEN.split())
SURNAMES = frozenset(_SURNAMES.split())

#: first words of places named after people: ``San Jose``, ``Saint Louis``, ``Fort Worth``
_PLACE_PREFIXES = (
    "san santa santo sao saint sainte st st. ste fort port mount mt lake new los las el la le "
    "north south east west upper lower great little grand cape bad "
    "санкт сан усть нижний верхний новый новая старый старая большой малый"
)
PLACE_PREFIXES = frozenset(_PLACE_PREFIXES.split())
#: words of places, organisations and things: a value holding one is not a person's name
_THING_WORDS = (
    "street st road avenue ave lane drive boulevard square place city town village county "
    "park beach springs spring bay hills hill island islands valley heights river falls "
    "station airport center centre mall hotel bank school university college hospital "
    "church museum inc ltd llc gmbh corp co company group holding partners sons brothers "
    "foundation service services store shop market cafe restaurant bar club team "
    "sa sas sarl plc ltda gbr ag kg ohg gmbh spa srl snc sl slu sll slne sc scp coop scom "
    "sat bv nv ab oy as llp lp pty ii iii "
    "ооо оао зао пао ао ип гбу муп фгуп банк компания группа холдинг магазин завод групп "
    "лимитед инкорпорэйтед инк трейд "
    "улица проспект переулок площадь город район область край республика"
)
THING_WORDS = frozenset(_THING_WORDS.split())

_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’\-.])*$")
_PATRONYMIC = re.compile(r"(?:вич|вна|ична|оглы|кызы)$")


def _plain(word: str) -> str:
    """A word as the lists spell it: lower case, Latin letters without their accents
    (``Cándida`` -> ``candida``; Cyrillic kept: ``Пётр`` -> ``пётр``, listed both ways)."""
    word = word.lower().strip(".")
    if word.isascii() or any("а" <= c <= "я" or c == "ё" for c in word):
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _words(value: str) -> list[str] | None:
    """The words of a value shaped like a person's name, else ``None``."""
    words = value.split()
    if not 1 <= len(words) <= 4:
        return None
    for w in words:
        if not (w[0].isupper() and _WORD.match(w)) or w.lower().replace(".", "") in THING_WORDS:
            return None
    if len(words) == 1 and (len(words[0]) < 2 or words[0].isupper()):
        return None  # a single short word or an acronym (``USA``, ``ООО``) is not a name
    return words


def person_shaped(value: str, *, words: tuple[int, int] = (1, 4)) -> bool:
    """One to four (or ``words``) capitalized words of letters, none of places or things."""
    found = _words(value)
    return found is not None and words[0] <= len(found) <= words[1]


def person_evident(value: str, *, alone: bool = True) -> bool:
    """A value shaped like a name that holds a common given name, surname or a patronymic.
    ``alone``: the value must be two or three words (a full name: what a column nobody named
    is judged on); otherwise a single given name or surname counts (a ``first_name`` column)."""
    found = _words(value)
    if found is None or (alone and not 2 <= len(found) <= 3):
        return False
    lowered = [_plain(w) for w in found]
    if lowered[0] in PLACE_PREFIXES:
        return False
    return any(
        w in GIVEN_NAMES or w in SURNAMES or (len(w) > 5 and _PATRONYMIC.search(w)) for w in lowered
    )


def lower_name_evident(value: str) -> bool:
    """A full name written in lower case, as ``lower(full_name)`` in a source's query gives it
    (``иванов иван иванович``, ``john smith``): two or three lower-case words of letters, at
    least two of them a common given name, surname or patronymic. Without capitals a single
    listed word is weak evidence (``lee``, ``baker``, ``miller`` are words too), so two are
    asked where :func:`person_evident` asks one."""
    words = value.split()
    if not 2 <= len(words) <= 3 or not all(w.islower() and _WORD.match(w) for w in words):
        return False
    lowered = [_plain(w) for w in words]
    if lowered[0] in PLACE_PREFIXES or any(w in THING_WORDS for w in lowered):
        return False
    known = sum(
        w in GIVEN_NAMES or w in SURNAMES or (len(w) > 5 and bool(_PATRONYMIC.search(w)))
        for w in lowered
    )
    return known >= 2


_LOGIN = re.compile(r"^[a-z]+(?:[._\-][a-z]+){1,2}$")


def login_name_evident(value: str) -> bool:
    """A login or an e-mail's local part made of a person's name, as ``split_part(email, '@',
    1)`` in a source's query gives it (``ivan.petrov``, ``j.smith``, ``petrov_ivan``): two or
    three lower-case Latin parts joined by ``.``, ``_`` or ``-``, one of them a common given
    name or surname of three letters or more and each of the others listed too or an
    initial (``user.admin``, ``mail.ru`` and ``sales-team`` are not)."""
    if not _LOGIN.match(value):
        return False
    parts = re.split(r"[._\-]", value)
    listed = [p in GIVEN_NAMES or p in SURNAMES for p in parts]
    if not any(k and len(p) >= 3 for p, k in zip(parts, listed)):
        return False
    return all(k or len(p) == 1 for p, k in zip(parts, listed))


__all__ = [
    "GIVEN_NAMES",
    "PLACE_PREFIXES",
    "SURNAMES",
    "THING_WORDS",
    "login_name_evident",
    "lower_name_evident",
    "person_evident",
    "person_shaped",
]
